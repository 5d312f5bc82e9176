"""`python -m kaput_not` runs the command line."""

from kaput_not.cli import main

raise SystemExit(main())
