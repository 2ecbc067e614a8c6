˜
	
input_x"v
trainable_variables_]
[
scale:0scale/Assignscale/Read/ReadVariableOp:0(2!scale/Initializer/initial_value:09*

	input_x:0