"""python train.py --amplitude 4: the checkout's entry point of `python -m keras_bnreg.train`
(installed: `bnreg-train`). `python train.py --help` lists every flag."""

import sys

from keras_bnreg.train import main

if __name__ == "__main__":
    sys.exit(main())
