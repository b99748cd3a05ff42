"""`python -m lucidserve` runs the command line."""

from lucidserve.cli import main

raise SystemExit(main())
