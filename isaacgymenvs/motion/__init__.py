"""Reference motion: clip files (poselib ``.npy``/``.npz``, G1 ``.csv``), clips in a model's coordinates,
the MotionLib (sampling, interpolation, key bodies) and retargeting to the G1.

Modules: ``poselib`` (reading IsaacGymEnvs clips), ``g1_csv`` / ``g1_model`` / ``g1`` (the G1 format,
model and clips), ``hinge_chain`` / ``joint_angles`` (hinge angles and rates from rotations), ``clip``
(:class:`~isaacgymenvs.motion.clip.MotionClip`), ``loader`` (which reader a file takes), ``skeleton``
and ``motion_lib`` (torch), ``retarget`` with ``retarget_targets`` / ``ik`` / ``retarget_report``,
and ``clip_tools`` (the kinematic work of the command line).

Imports: this package imports ``isaacgymenvs.motion``, ``isaacgymenvs.utils`` and
``isaacgymenvs.assets`` only, never ``sim``, ``tasks``, ``learning``, ``characters`` or
``task_registry``. The one exception is ``__main__`` (``python -m isaacgymenvs.motion``), which
forwards to :mod:`isaacgymenvs.motion_check`.
"""
