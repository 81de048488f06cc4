package quantize

// The W8A8 scheme, as compressed-tensors' int-quantized format and
// llm-compressor's W8A8 preset (INT8_W8A8) define it: the weights exactly
// as the int8 scheme's per-channel ones (an int8 `weight`, a
// `weight_scale` [out, 1] in the model dtype, scale = max|w|/127), and the
// activations quantized at run time, one symmetric int8 scale per token,
// which the config says in the group's input_activations. The forward
// pass runs such Linears on int8 dot products (kernels.W8A8).

// W8A8Config returns the quantization_config llm-compressor writes for its
// W8A8 preset: int8 weights with a static scale per output channel,
// activations quantized to int8 per token at run time (dynamic, no
// observer). ignore names the Linear modules left in float.
func W8A8Config(ignore []string) map[string]any {
	return compressedTensorsConfig("int-quantized", quantArgs(8, "int", true, "channel", nil, false, "minmax"),
		quantArgs(8, "int", true, "token", nil, true, nil), "", ignore)
}
