"""KL schedulers (GRPO-D Eq. 3 by hand) and the PTST curriculum."""
import pytest

from vlmrl.algo.curriculum import Curriculum, Stage
from vlmrl.algo.kl import ConstantKL, DynamicKL, LinearKL, NoKL


def test_dynamic_eq3_at_key_points():
    kl = DynamicKL(beta_min=0.04, beta_max=0.1, total_steps=100, warmup_frac=0.3)  # counting, w = 30
    assert kl(0) == pytest.approx(0.07)        # beta_mid
    assert kl(15) == pytest.approx(0.055)      # 0.07 - 0.03 * 15/30
    assert kl(30) == pytest.approx(0.04)       # beta_min at w
    assert kl(65) == pytest.approx(0.07)       # 0.04 + 0.06 * 35/70
    assert kl(100) == pytest.approx(0.1)       # beta_max at t
    assert kl(500) == pytest.approx(0.1)       # clamped after t


def test_dynamic_geometry_defaults_and_non_integer_w():
    kl = DynamicKL(beta_min=0.0, beta_max=0.02, total_steps=15, warmup_frac=0.3)   # w = 4.5
    assert kl(0) == pytest.approx(0.01)
    assert kl(4) == pytest.approx(0.01 - 0.01 * 4 / 4.5)
    assert kl(5) == pytest.approx(0.02 * 0.5 / 10.5)
    assert kl(15) == pytest.approx(0.02)
    assert not kl.always_zero


def test_other_schedulers():
    assert ConstantKL(0.04, 10)(7) == 0.04
    lin = LinearKL(0.0, 0.1, total_steps=10)
    assert [lin(s) for s in (0, 5, 10)] == pytest.approx([0.0, 0.05, 0.1])
    assert NoKL(10)(3) == 0.0 and NoKL(10).always_zero
    assert ConstantKL(0.0, 10).always_zero and not ConstantKL(0.01, 10).always_zero


@pytest.mark.parametrize("kwargs,match", [
    (dict(beta_min=-0.1, beta_max=0.1), "beta_min"),
    (dict(beta_min=0.2, beta_max=0.1), "beta_min"),
    (dict(beta_min=0.0, beta_max=0.1, warmup_frac=1.0), "warmup_frac"),
])
def test_dynamic_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DynamicKL(total_steps=10, **{"warmup_frac": 0.3, **kwargs})


def test_scheduler_state_round_trip_and_mismatch():
    kl = DynamicKL(0.04, 0.1, 100, 0.3)
    kl.load_state_dict(kl.state_dict())
    with pytest.raises(ValueError, match="differs"):
        DynamicKL(0.04, 0.1, 200, 0.3).load_state_dict(kl.state_dict())


def test_ptst_stage_boundaries():
    c = Curriculum([{"max_new_tokens": 4096, "group_size": 16, "steps": 100},
                    {"max_new_tokens": 8192, "group_size": 8, "steps": 100}], total_steps=200, name="ptst")
    assert c.stage_at(0) == (0, Stage(4096, 16, 100))
    assert c.stage_at(99)[0] == 0
    assert c.stage_at(100) == (1, Stage(8192, 8, 100))
    assert c.stage_at(199)[0] == 1
    assert c.max_group_size == 16


def test_curriculum_must_cover_the_run_and_groups_need_two():
    with pytest.raises(ValueError, match="cover 100 steps"):
        Curriculum([{"max_new_tokens": 8, "group_size": 4, "steps": 100}], total_steps=200, name="ptst")
    with pytest.raises(ValueError, match="group_size=1"):
        Curriculum([{"max_new_tokens": 8, "group_size": 1, "steps": 100}], total_steps=100, name="ptst")


def test_adaptive_kl_by_hand():
    from vlmrl.algo.kl import AdaptiveKL

    kl = AdaptiveKL(init_beta=0.01, target=0.02, horizon=1000, total_steps=10)
    assert kl(0) == 0.01
    kl.update(observed_kl=0.03, n_samples=100)        # error = clip(0.5, +-0.2) = 0.2: x (1 + 0.2 * 0.1)
    assert kl(1) == pytest.approx(0.01 * 1.02)
    kl.update(observed_kl=0.018, n_samples=100)       # error = -0.1: x (1 - 0.01)
    assert kl(2) == pytest.approx(0.01 * 1.02 * 0.99)
    kl.update(observed_kl=0.0, n_samples=50)          # error clipped at -0.2: x (1 - 0.01)
    assert kl(3) == pytest.approx(0.01 * 1.02 * 0.99 * 0.99)
    assert not kl.always_zero and AdaptiveKL(0.0, 0.02, 1000, 10).always_zero


def test_adaptive_kl_state_restores_exactly_and_refuses_other_settings():
    from vlmrl.algo.kl import AdaptiveKL

    kl = AdaptiveKL(0.01, 0.02, 1000, 10)
    for observed in (0.05, 0.001, 0.03):
        kl.update(observed, 64)
    fresh = AdaptiveKL(0.01, 0.02, 1000, 10)
    fresh.load_state_dict(kl.state_dict())
    assert fresh(5) == kl(5) and fresh.state_dict() == kl.state_dict()
    with pytest.raises(ValueError, match="differs"):
        AdaptiveKL(0.01, 0.05, 1000, 10).load_state_dict(kl.state_dict())
    with pytest.raises(ValueError, match="kl.target"):
        AdaptiveKL(0.01, 0.0, 1000, 10)


def test_step_schedules_ignore_observed_kl():
    kl = DynamicKL(0.04, 0.1, 100, 0.3)
    before = [kl(s) for s in range(101)]
    kl.update(5.0, 64)
    assert [kl(s) for s in range(101)] == before
