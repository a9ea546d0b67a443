import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the CLI (rl2fpga/cli.py)
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
