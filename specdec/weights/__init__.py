"""Weight formats and their kernels, below both the zoo (which packs them) and the runners (which run them):
int8 / int4 modules built from a GGUF's own codes (quant.py) and the AVX512-VNNI kernel library (kernels/)."""
