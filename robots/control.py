"""The control period every task, dataset and planner shares: one action per ``CONTROL_DT`` seconds (10 Hz).

Tasks step their physics by it, recorded stores advance one row per period (their ``fps``
attribute is ``CONTROL_HZ``), and the point-flow formulation's horizon steps, gripper-point
velocities and planners' fingertip paths are measured in it.
"""

CONTROL_HZ = 10
CONTROL_DT = 1.0 / CONTROL_HZ  # s (exactly the float 0.1)
