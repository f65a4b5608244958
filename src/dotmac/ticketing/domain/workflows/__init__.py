"""The built-in workflows, one module each (``domain.builtin_workflows`` lists them)."""
