"""passes/dce.py: no-op updates go, and with them what only they read."""
from __future__ import annotations

from graphk.passes.dce import eliminate_dead_code
from test_pass_helpers import X, check_pass, unchanged


def test_an_update_to_the_current_value_is_dropped_with_what_only_it_read():
    before = f"""graph @f(%x) {{
  {X} : float32[3]
  %v = variable {{name="v"}} : float32[3]
  %w = variable {{name="w"}} : float32[3]
  %n = neg(%x) : float32[3]
  %s = add(%w, %x) : float32[3]
  return %n
  update %v = %v
  update %w = %s
}}"""
    after = f"""graph @f(%x) {{
  {X} : float32[3]
  %n = neg(%x) : float32[3]
  %w = variable {{name="w"}} : float32[3]
  %s = add(%w, %x) : float32[3]
  return %n
  update %w = %s
}}"""
    check_pass(eliminate_dead_code, before, after)


def test_unused_inputs_stay_as_feeds():
    unchanged(eliminate_dead_code, f"""graph @f(%x) {{
  {X} : float32[3]
  %c = constant {{value=dense<float32[]>1.0}} : float32[]
  return %c
}}""")
