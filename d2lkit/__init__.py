"""d2lkit: the helper package of the book *Optimization for Deep Learning*."""
