"""rl2fpga.core: the hub every stage imports. The integer-exact golden model (its fixed-point
formats, layers and delta-input semantics): the one meaning every hardware form is checked
against, bit for bit."""
