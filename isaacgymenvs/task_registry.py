"""Task names and their characters, importable without torch (sim2sim, tools)."""

#: task name -> (character, asset folder of its clips)
TASKS = {"HumanoidAMP": ("amp_humanoid", "amp_humanoid/motions")}
