"""Does Keras' `model.fit` work under MultiWorkerMirroredStrategy here? (keras-team/keras#20585)

Command: python benchmarks/tf_fit_multiworker_pitfall.py

Starts 2 worker processes wired by TF_CONFIG on 127.0.0.1; each builds a small Keras model in the
strategy's scope and calls `model.fit` on 64 samples. Prints, per worker, `fit ok` or the error
`fit` raised, then one verdict line. With TensorFlow 2.21 / Keras 3.15 it fails with
`ValueError: Attempt to convert a value (PerReplica:{...}) with an unsupported type`, which is why
`tf-multiworker` trains with a custom `strategy.run` loop (docs/tensorflow.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from distbench.launch.local import free_port

WORKER_TIMEOUT_S = 180


def worker() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=60)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    with strategy.scope():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(2)])
        model.compile(optimizer="adam",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 8), dtype=np.float32), rng.integers(0, 2, 64)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    try:
        model.fit(data, epochs=1, verbose=0)
        print("RESULT fit ok", flush=True)
    except Exception as exc:  # noqa: BLE001 - the point is to show whatever fit raises
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [""]
        # The message embeds the tensor's values; its first and last lines say what happened.
        summary = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        print(f"RESULT fit failed: {type(exc).__name__}: {summary[:200]}", flush=True)


def main() -> int:
    hosts = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps(
            {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True))
    results = []
    for index, proc in enumerate(procs):
        try:
            out, _ = proc.communicate(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            out = "RESULT no answer within the time limit"
        line = next((ln for ln in out.splitlines() if ln.startswith("RESULT")),
                    f"RESULT exited with {proc.returncode} and no result")
        results.append(line[len("RESULT "):])
        print(f"worker {index}: {results[-1]}")
    ok = all(r == "fit ok" for r in results)
    print("verdict: model.fit under MultiWorkerMirroredStrategy "
          + ("works here" if ok else "fails here (keras-team/keras#20585)"))
    return 0


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        raise SystemExit(main())
