"""`python -m distbench` is the same as the `distbench` command."""

from distbench.cli.main import main

raise SystemExit(main())
