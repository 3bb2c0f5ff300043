"""One message style for bad arguments: ``name=value; allowed: ...``."""

import numpy as np
import pytest

from vgg_keras import validation


@pytest.mark.parametrize("value", [0, -3, True, 2.0, "4", None])
def test_check_int_rejects_non_integers_and_small_values(value):
    with pytest.raises(ValueError, match=rf"^batch_size={value!r}; allowed: an integer >= 1\.$"):
        validation.check_int("batch_size", value)


def test_check_int_returns_a_python_int():
    assert validation.check_int("grid", np.int64(5)) == 5 and type(validation.check_int("grid", np.int64(5))) is int
    assert validation.check_int("shuffle_buffer", 0, minimum=0) == 0


def test_check_choice_and_scales():
    assert validation.check_choice("head", "conv", ("dense", "conv")) == "conv"
    with pytest.raises(ValueError, match=r"^head='fcn'; allowed: 'dense', 'conv'\.$"):
        validation.check_choice("head", "fcn", ("dense", "conv"))
    assert validation.check_scales(np.int32(256), 32) == (256,)
    assert validation.check_scales([256, 384], 32) == (256, 384)
    for bad in ([], [256, 256], [16], [256.0]):
        with pytest.raises(ValueError, match=r"^scales=.*; allowed: one or more distinct integers >= 32"):
            validation.check_scales(bad, 32)
    assert validation.first_few([str(i) for i in range(12)], limit=3) == "0, 1, 2 and 9 more"
    assert validation.first_few([]) == "none"
