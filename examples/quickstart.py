"""graphk quickstart: build a graph, read its IR, compile it, run it, train one step.

Run: python examples/quickstart.py
"""
import numpy as np

from graphk import backend as K

# A placeholder with an unknown batch size and two variables.
x = K.placeholder(shape=(None, 3), name="x")
W = K.variable(np.arange(12, dtype="float32").reshape(3, 4) / 10, name="W")
b = K.variable(np.zeros(4, dtype="float32"), name="b")

# A small layer: relu(x @ W + b), and a loss.
y = K.relu(K.dot(x, W) + b)
loss = K.mean(K.square(y - 1.0))

# One SGD step as a variable update, with the gradient built symbolically.
grad_W, grad_b = K.gradients(loss, [W, b])
step = K.function([x], [y, loss],
                  updates=[K.update_sub(W, 0.1 * grad_W), K.update_sub(b, 0.1 * grad_b)],
                  name="sgd_step")

print("IR of the compiled step (every value shows its dtype and shape; ?0 is the batch):")
print(step.ir)

batch = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], dtype="float32")
for i in range(3):
    outputs, loss_value = step([batch])
    print(f"step {i}: loss = {float(loss_value):.4f}")
print("y =", np.array2string(outputs, precision=3))
print("b after 3 steps =", np.array2string(K.get_value(b), precision=4))
