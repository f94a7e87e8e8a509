"""``python -m bench`` (from the repository root): the same command as ``cohortlab bench``."""

from cohortlab.cli import main

if __name__ == "__main__":
    main(["bench", *__import__("sys").argv[1:]], prog_name="python -m bench")
