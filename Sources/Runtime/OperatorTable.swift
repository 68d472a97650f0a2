// The one table of operators: add a line here when an operator file is added.
// Ranges are model opset versions of the operator's domain that the implementation covers.

let operatorTable: [OperatorRegistration] = [
]
