"""The learner: PPO plus the AMP discriminator.

``learner`` (the interface the rest of the trainer sees, its errors, the checkpoint file),
``amp_math`` (the discriminator's losses, reward and GAE as pure functions), ``discriminator``,
``normalizer``, ``replay_buffer``, ``vecenv`` (the task as the learner steps it), ``evaluation`` (the
deterministic evaluation), ``config_check`` (the config keys), and ``rl_games_adapter``, the only
package that imports rl_games.
"""
