// The one table of operators: add a line here when an operator file is added.
// Ranges are model opset versions of the operator's domain that the implementation covers.

let operatorTable: [OperatorRegistration] = [
    // Convolution, normalization, pooling, linear algebra
    // (upper bounds: the newest opset known not to change these operators' semantics).
    OperatorRegistration("Conv", opsets: 1...24, Conv.self),
    OperatorRegistration("Gemm", opsets: 7...24, Gemm.self),
    OperatorRegistration("MatMul", opsets: 1...24, MatMul.self),
    OperatorRegistration("BatchNormalization", opsets: 7...24, BatchNormalization.self),
    OperatorRegistration("MaxPool", opsets: 1...24, MaxPool.self),
    OperatorRegistration("AveragePool", opsets: 1...24, AveragePool.self),
    OperatorRegistration("GlobalAveragePool", opsets: 1...24, GlobalAveragePool.self),
    OperatorRegistration("GlobalMaxPool", opsets: 1...24, GlobalMaxPool.self),
    // End of convolution, normalization, pooling, linear algebra
    // Elementwise, shape, reduction
    // (upper bounds: opset 24, the newest in onnx 1.19; later versions there only add types).
    OperatorRegistration("Relu", opsets: 6...24, Relu.self),
    OperatorRegistration("Sigmoid", opsets: 6...24, Sigmoid.self),
    OperatorRegistration("HardSigmoid", opsets: 6...24, HardSigmoid.self),
    OperatorRegistration("HardSwish", opsets: 14...24, HardSwish.self),
    OperatorRegistration("Clip", opsets: 6...24, Clip.self),
    OperatorRegistration("Add", opsets: 7...24, Add.self),
    OperatorRegistration("Sub", opsets: 7...24, Sub.self),
    OperatorRegistration("Mul", opsets: 7...24, Mul.self),
    OperatorRegistration("Div", opsets: 7...24, Div.self),
    OperatorRegistration("Concat", opsets: 1...24, Concat.self),
    OperatorRegistration("Split", opsets: 2...24, Split.self),
    OperatorRegistration("Slice", opsets: 1...24, Slice.self),
    OperatorRegistration("Reshape", opsets: 5...24, Reshape.self),
    OperatorRegistration("Flatten", opsets: 1...24, Flatten.self),
    OperatorRegistration("Squeeze", opsets: 1...24, Squeeze.self),
    OperatorRegistration("Unsqueeze", opsets: 1...24, Unsqueeze.self),
    OperatorRegistration("ReduceMean", opsets: 1...24, ReduceMean.self),
    OperatorRegistration("ReduceMax", opsets: 1...24, ReduceMax.self),
    OperatorRegistration("ReduceSum", opsets: 1...24, ReduceSum.self),
    OperatorRegistration("Transpose", opsets: 1...24, Transpose.self),
    OperatorRegistration("Expand", opsets: 8...24, Expand.self),
    OperatorRegistration("Pad", opsets: 2...24, Pad.self),
    OperatorRegistration("Softmax", opsets: 1...24, Softmax.self),
    OperatorRegistration("LogSoftmax", opsets: 1...24, LogSoftmax.self),
    OperatorRegistration("Identity", opsets: 1...24, Identity.self),
    OperatorRegistration("Constant", opsets: 1...24, Constant.self),
    OperatorRegistration("Shape", opsets: 1...24, Shape.self),
    OperatorRegistration("Gather", opsets: 1...24, Gather.self),
    OperatorRegistration("Cast", opsets: 6...24, Cast.self),
    OperatorRegistration("Dropout", opsets: 7...24, Dropout.self),
    // End of elementwise, shape, reduction
]
