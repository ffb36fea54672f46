"""Entry point so that `python -m medgan` and `torchrun -m medgan` reach the CLI."""

from pipelines.cli import main

if __name__ == "__main__":
    main()
