"""SplitLab's statistics: pure functions over numpy arrays and sufficient statistics.

Modules (import what you need; this package imports nothing eagerly):

- :mod:`~splitlab.core.stats.sufficient` -- mergeable sufficient statistics (:class:`Moments`);
- :mod:`~splitlab.core.stats.comparison` -- the two-arm comparison every method reduces to;
- :mod:`~splitlab.core.stats.means`, :mod:`~splitlab.core.stats.proportions`,
  :mod:`~splitlab.core.stats.ratio` -- Welch t, two-proportion z, delta-method ratios;
- :mod:`~splitlab.core.stats.cuped`, :mod:`~splitlab.core.stats.regression`,
  :mod:`~splitlab.core.stats.cupac`, :mod:`~splitlab.core.stats.adjustment` -- variance
  reduction and the ``auto`` choice;
- :mod:`~splitlab.core.stats.nonparametric` -- Mann-Whitney U and the bootstrap;
- :mod:`~splitlab.core.stats.sequential` -- always-valid confidence sequences and p-values;
- :mod:`~splitlab.core.stats.power` -- sample size, MDE, runtime;
- :mod:`~splitlab.core.stats.multiple`, :mod:`~splitlab.core.stats.srm`,
  :mod:`~splitlab.core.stats.bayes`, :mod:`~splitlab.core.stats.decision`.

Only numpy, scipy and scikit-learn are imported here: no pandas, no I/O.
"""
