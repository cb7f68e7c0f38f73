"""The class workflow: import a Blackboard download, grade everyone, apply course policy, summarise, export."""
