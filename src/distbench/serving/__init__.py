"""Using a trained model: checkpoint loading, `predict` and the Gradio `serve` page. Imports
models, data, system and core; never training or launch."""
