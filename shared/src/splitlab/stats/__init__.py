"""SplitLab's statistics: pure functions over numpy arrays and sufficient statistics.

Modules (import what you need; this package imports nothing eagerly):

- :mod:`~splitlab.stats.sufficient` -- mergeable sufficient statistics (:class:`Moments`);
- :mod:`~splitlab.stats.comparison` -- the two-arm comparison every method reduces to;
- :mod:`~splitlab.stats.means`, :mod:`~splitlab.stats.proportions`, :mod:`~splitlab.stats.ratio`
  -- Welch t, two-proportion z, delta-method ratios;
- :mod:`~splitlab.stats.cuped`, :mod:`~splitlab.stats.regression`, :mod:`~splitlab.stats.cupac`,
  :mod:`~splitlab.stats.adjustment` -- variance reduction and the ``auto`` choice;
- :mod:`~splitlab.stats.nonparametric` -- Mann-Whitney U and the bootstrap;
- :mod:`~splitlab.stats.sequential` -- always-valid confidence sequences and p-values;
- :mod:`~splitlab.stats.power` -- sample size, MDE, runtime;
- :mod:`~splitlab.stats.multiple`, :mod:`~splitlab.stats.srm`, :mod:`~splitlab.stats.bayes`,
  :mod:`~splitlab.stats.decision`.

Only numpy, scipy and scikit-learn are imported here: no pandas, no I/O.
"""
