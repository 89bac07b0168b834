"""The keywords are the settings of `backprop train`: same names, same defaults."""

import inspect
import json

import backprop
from backprop import _core


def test_signature_is_the_settings_type():
    rust = json.loads(_core.keywords())
    for cls in (backprop.MLPRegressor, backprop.MLPClassifier):
        params = inspect.signature(cls.__init__).parameters
        python = [(n, p.default) for n, p in params.items() if n not in ("self", "verbose")]
        expected = [(n, tuple(d) if isinstance(d, list) else d) for n, d in rust]
        assert python == expected


def test_every_setting_left_out_says_why():
    left_out = dict(_core.not_keywords())
    assert {"data", "target", "test_fraction", "out", "quiet"} <= set(left_out)
    assert all(reason for reason in left_out.values())
    params = set(inspect.signature(backprop.MLPRegressor.__init__).parameters)
    assert not params & set(left_out)
