"""Chinese-CLIP (cn_clip) encoders: visual.py and textual.py on base.py, with export, int8 and checkpoints."""
