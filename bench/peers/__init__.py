"""One module per implementation timed by bench/run.py, each run in its own worker process:
fastgru, torch (torch.nn.GRU, its dynamic int8 quantization, GRUCell), onnxruntime, openvino
(float32 and the bf16 hint), onednn (a compiled C++ program, onednn_gru.cpp), matmul (the
matrix-product rate), and onnx_model (the one-node ONNX GRU that ONNX Runtime and OpenVINO run)."""
