"""python reproduce.py all: the checkout's entry point of `python -m keras_bnreg.reproduce`
(installed: `bnreg-reproduce`). `python reproduce.py --help` lists every study and flag."""

import sys

from keras_bnreg.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
