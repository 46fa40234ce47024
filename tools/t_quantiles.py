#!/usr/bin/env python3
"""The 0.975 quantiles of Student's t that tests/format_test.cc checks
StudentT975 against, at whole and fractional degrees of freedom, computed
independently of Boost with mpmath (Debian's python3-mpmath, a dependency of
python3-torch's sympy): the CDF as the regularised incomplete beta
function, inverted by root finding at 30 digits.

  tools/t_quantiles.py
"""
import mpmath

mpmath.mp.dps = 30


def t_cdf(x, df):
    # P(T <= x) for x > 0: 1 - I_{df/(df+x^2)}(df/2, 1/2) / 2.
    return 1 - mpmath.betainc(df / 2, mpmath.mpf(1) / 2, 0,
                              df / (df + x * x), regularized=True) / 2


for df in ["1", "1.5", "2", "2.5", "3.7", "29", "120"]:
    d = mpmath.mpf(df)
    q = mpmath.findroot(lambda x: t_cdf(x, d) - mpmath.mpf("0.975"), 2.5)
    print("{%s, %s}," % (df, mpmath.nstr(q, 15)))
