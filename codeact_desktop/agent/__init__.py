"""The CodeAct loop: prompt assembly, <execute> parsing, observations, events."""
