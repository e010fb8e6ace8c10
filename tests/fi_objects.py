"""The oracle's plain type and fimath records (fi_oracle.T, fi_oracle.M) as fixedpoint objects.

Kept apart from fi_oracle, which must never import fixedpoint."""
import fixedpoint as fp
from fi_oracle import M, T


def numerictype_of(t: T):
    return fp.numerictype(t.signed, t.w, t.f)


def fimath_of(m: M):
    return fp.fimath(rounding_method=m.rounding, overflow_action=m.overflow,
                     product_mode=m.product_mode, product_word_length=m.product_word_length,
                     product_fraction_length=m.product_fraction_length,
                     sum_mode=m.sum_mode, sum_word_length=m.sum_word_length,
                     sum_fraction_length=m.sum_fraction_length,
                     cast_before_sum=m.cast_before_sum)
