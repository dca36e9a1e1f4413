"""The plain maths behind the learning labs: gradient descent on a line, loss landscapes."""
