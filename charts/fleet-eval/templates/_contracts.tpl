{{/* Generated from eval_runner/contracts.py by `make render` (python -m workflows.chart_render); do not edit. */}}
{{/* The number of API shards: the demo serves this many and sources.shardUrls lists this many. */}}
{{- define "fleet-eval.shardCount" -}}5{{- end -}}
