"""rl2fpga.rtl_tests."""
