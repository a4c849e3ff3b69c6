"""Generator settings and named size profiles: a dataset is reproducible from (profile, seed)."""
from dataclasses import dataclass
from typing import Dict, Tuple

DEFAULT_COUNTRIES = ("US", "IN", "BR", "DE", "GB", "FR", "JP", "CA")
DEFAULT_COUNTRY_WEIGHTS = (0.30, 0.18, 0.12, 0.10, 0.09, 0.08, 0.07, 0.06)
DEFAULT_AGE_BUCKETS = ("18-24", "25-34", "35-44", "45-54", "55+")
DEFAULT_AGE_BUCKET_WEIGHTS = (0.20, 0.32, 0.24, 0.14, 0.10)


@dataclass(frozen=True)
class GeneratorConfig:
  """Every knob of the generative process (see `ctxrec.synthetic.generator`), with its default."""

  # Sizes.
  num_users: int = 500
  num_items: int = 1000
  num_categories: int = 20
  num_days: int = 30
  start_timestamp: int = 1767225600  # 2026-01-01T00:00:00Z.

  # Users: activity and long-term interests.
  sessions_per_user_mean: float = 15.0  # Poisson mean of sessions at average activity.
  activity_sigma: float = 0.75  # Activity ~ LogNormal(-sigma^2/2, sigma): mean 1.
  core_interests_min: int = 4  # A user concentrates on min..max categories...
  core_interests_max: int = 8
  interest_weight_alpha: float = 5.0  # ...weighted by Dirichlet(alpha).
  # Preference of a (country, age) group: (1 - mix) * Dirichlet(alpha) + mix * pi.
  group_dirichlet_alpha: float = 0.2
  group_pi_mix: float = 0.3

  # Sessions.
  p_follow: float = 0.6  # P(intent drawn from the user's interests), else from pi.
  views_per_session_mean: float = 1.5  # Views per session = 1 + Poisson(this).
  p_convert: float = 0.5  # P(a session ends in a conversion).
  p_convert_viewed: float = 0.5  # P(the conversion looks at a viewed item: a random view).
  p_offcategory_view: float = 0.5  # P(a view's category is drawn from pi, not the intent).
  p_convert_direct: float = 0.2  # P(a converting session has no views, only the conversion).

  # Latent taste: items and users have a style; the fresh conversion draw favours the user's.
  num_styles: int = 8  # Styles 0..S-1, uniform over items and over users.
  taste_strength: float = 30.0  # beta: P(i | c, u) ∝ pop_c(i) * (1 + beta [style_i == style_u]).

  # New users: their sessions all fall in the last `new_user_days` days (cold start in eval).
  new_user_share: float = 0.1
  new_user_days: int = 7

  # Catalog.
  item_zipf_exponent: float = 1.0  # Item popularity in its category ~ 1/(rank+1)^s.
  # > 0: item popularity ∝ LogNormal(0, sigma) instead: a long tail across small categories
  # too, where most items are seen once if at all.
  item_lognormal_sigma: float = 0.0
  category_zipf_exponent: float = 0.8  # Category popularity pi ~ 1/(rank+1)^s.
  # > 0: pi ∝ LogNormal(0, sigma) instead (the Zipf exponent unused): a real catalog's many tiny
  # categories and few huge ones, since category sizes follow pi.
  category_lognormal_sigma: float = 0.0
  min_items_per_category: int = 5  # Items every category gets as their primary category.
  p_unsorted_categories: float = 0.5  # P(an item lists its categories in a random order).

  # Demographics.
  countries: Tuple[str, ...] = DEFAULT_COUNTRIES
  country_weights: Tuple[float, ...] = DEFAULT_COUNTRY_WEIGHTS
  age_buckets: Tuple[str, ...] = DEFAULT_AGE_BUCKETS
  age_bucket_weights: Tuple[float, ...] = DEFAULT_AGE_BUCKET_WEIGHTS

  # Execution: users are generated and written this many at a time (bounds memory).
  user_chunk_size: int = 20000

  def __post_init__(self) -> None:
    """Fails at construction rather than deep inside generation."""
    problems = []
    if min(self.num_users, self.num_items, self.num_categories, self.num_days) < 1:
      problems.append("num_users, num_items, num_categories and num_days must be >= 1")
    if self.num_categories < max(3, self.core_interests_max):
      problems.append("num_categories must be >= max(3, core_interests_max)")
    if self.num_items < self.min_items_per_category * self.num_categories:
      problems.append("num_items must be >= min_items_per_category * num_categories")
    if not 1 <= self.core_interests_min <= self.core_interests_max:
      problems.append("need 1 <= core_interests_min <= core_interests_max")
    for name in ("p_follow", "p_convert", "p_convert_viewed", "p_offcategory_view",
                 "p_convert_direct", "new_user_share", "p_unsorted_categories", "group_pi_mix"):
      if not 0.0 <= getattr(self, name) <= 1.0:
        problems.append(f"{name} must be in [0, 1]")
    if self.num_styles < 1 or self.new_user_days < 1:
      problems.append("num_styles and new_user_days must be >= 1")
    if not (self.category_lognormal_sigma >= 0.0 and self.item_lognormal_sigma >= 0.0):
      problems.append("category_lognormal_sigma and item_lognormal_sigma must be >= 0")
    if not self.taste_strength >= 0.0:
      problems.append("taste_strength must be >= 0")
    if len(self.countries) != len(self.country_weights):
      problems.append("countries and country_weights differ in length")
    if len(self.age_buckets) != len(self.age_bucket_weights):
      problems.append("age_buckets and age_bucket_weights differ in length")
    if self.user_chunk_size < 1:
      problems.append("user_chunk_size must be >= 1")
    if problems:
      raise ValueError("invalid GeneratorConfig: " + "; ".join(problems))


PROFILES: Dict[str, GeneratorConfig] = {
    # Unit tests: ~19k events, generated in well under a second.
    "tiny": GeneratorConfig(num_users=500, num_items=1000, num_categories=20, num_days=30),
    # `make run`: ~0.74M events, ~1 s; big enough for a model to beat popularity. Item
    # popularity a little flatter than Zipf 1 (a longer tail): popularity alone says less of
    # which item a category's buyer picks, as in a real catalog.
    "demo": GeneratorConfig(num_users=20000, num_items=10000, num_categories=50, num_days=60,
                            item_zipf_exponent=0.85),
    # Benchmark: ~37M events, ~1 min and ~1.3 GiB peak memory (chunks of 50k users).
    "large": GeneratorConfig(num_users=1_000_000, num_items=1_000_000, num_categories=500,
                             num_days=60, user_chunk_size=50000),
    # A small shop's short log: ~2k conversions over 9 days on a 50k-item catalog, most
    # converted items converted once, ~40% of conversions preceded in the session by a view of
    # the same item.
    "sparse": GeneratorConfig(num_users=10000, num_items=50000, num_categories=100, num_days=9,
                              sessions_per_user_mean=2.2, views_per_session_mean=2.0,
                              p_convert=0.1, p_convert_viewed=0.65, p_offcategory_view=0.3),
    # A real shop's first week and a half (shaped after a real e-commerce log): ~870 active
    # users over 9 days, 50k items in 3,000 fine-grained categories of log-normal sizes (median
    # 4 items, the largest ~2k), ~70% of the items in the log seen once, ~17 views per
    # conversion, ~40% of conversions after a view of the same item within the hour.
    "shop": GeneratorConfig(num_users=1000, num_items=50000, num_categories=3000, num_days=9,
                            min_items_per_category=1, category_lognormal_sigma=1.85,
                            item_zipf_exponent=0.3, sessions_per_user_mean=4.0,
                            views_per_session_mean=7.0, p_convert=0.4, p_convert_viewed=0.5,
                            p_offcategory_view=0.5),
}
