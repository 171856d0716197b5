"""``python -m datasets.synthetic OUT_DIR [...]``: write a synthetic dataset folder."""
from datasets.synthetic.writer import main

raise SystemExit(main())
