"""tfnas: weight-sharing neural architecture search with Keras 3 / TensorFlow.

Import the modules you need, e.g. ``from tfnas import search_space``; importing the package
itself is light (it does not import TensorFlow).
"""

__version__ = "0.1.0"
