"""backprop: feed-forward neural networks trained by backpropagation, in Rust, as
scikit-learn estimators.

>>> from backprop import MLPRegressor
>>> model = MLPRegressor(epochs=30).fit(X_train, y_train)
>>> model.score(X_test, y_test)
>>> model.save("runs/mine")            # the run folder `backprop train` writes
>>> backprop.load("runs/mine").predict(X_test)

``backprop.load`` reads any model the command line saved; predictions are bit for bit
those of ``backprop predict``. ``backprop.explain`` returns the numbers behind
``backprop explain descent|landscape|lr`` as numpy arrays.
"""

from . import explain
from ._estimators import MLPClassifier, MLPRegressor
from ._load import load

__all__ = ["MLPClassifier", "MLPRegressor", "explain", "load"]
