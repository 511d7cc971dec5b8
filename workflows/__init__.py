"""Hera definitions of fleet-eval's WorkflowTemplates and CronWorkflow, and the renderer into the chart."""
