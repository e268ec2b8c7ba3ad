"""`python -m jobs` is the same as the `reusescan` console script."""
from jobs.cli import main

if __name__ == "__main__":
    main()
