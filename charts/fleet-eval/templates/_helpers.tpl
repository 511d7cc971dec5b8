{{/* Name and label helpers, as in argo-helm. */}}

{{/* Chart name, overridable. */}}
{{- define "fleet-eval.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: release name + chart name unless the release already contains it. */}}
{{- define "fleet-eval.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Chart name and version, for the helm.sh/chart label. SemVer build metadata is left out: Flux's
helm-controller builds the chart from Git as `0.1.0+<commit>.<generation>` (reconcileStrategy Revision),
and a label carrying the commit would make every commit patch every object and restart every pod. */}}
{{- define "fleet-eval.chart" -}}
{{- printf "%s-%s" .Chart.Name (regexReplaceAll "[+].*$" .Chart.Version "") | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A component's full name: fullname-component. Call with (dict "context" $ "component" "mlflow"). */}}
{{- define "fleet-eval.componentName" -}}
{{- printf "%s-%s" (include "fleet-eval.fullname" .context) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of a component. */}}
{{- define "fleet-eval.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleet-eval.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* Common labels of a component. */}}
{{- define "fleet-eval.labels" -}}
helm.sh/chart: {{ include "fleet-eval.chart" .context }}
{{ include "fleet-eval.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: fleet-eval
{{- with .context.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of a GitOps release Workflow: the common labels without the chart and app versions. A
Workflow is a record; a label that changes with the chart would make each upgrade patch every record. */}}
{{- define "fleet-eval.releaseLabels" -}}
{{ include "fleet-eval.selectorLabels" (dict "context" . "component" "release") }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fleet-eval
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* image reference from {repository, tag}. */}}
{{/* An image by tag, pinned to its digest when one is given: a rebuilt tag then reaches (and rolls) the pods. */}}
{{- define "fleet-eval.image" -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- with .digest }}@{{ . }}{{ end -}}
{{- end -}}

{{/* The MLflow tracking URI the pods use. */}}
{{- define "fleet-eval.mlflowAllowedHosts" -}}
{{- $name := include "fleet-eval.componentName" (dict "context" . "component" "mlflow") -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.cluster.local" $name $ns) "localhost" "127.0.0.1" -}}
{{- $hosts := list -}}
{{- range $names -}}
{{- $hosts = append $hosts (printf "%s:%d" . (int $.Values.mlflow.port)) -}}
{{- end -}}
{{- join "," (concat $hosts .Values.mlflow.allowedHosts) -}}
{{- end -}}

{{- define "fleet-eval.mlflowUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s.%s.svc:%d" (include "fleet-eval.componentName" (dict "context" . "component" "mlflow")) .Release.Namespace (int .Values.mlflow.port) -}}
{{- else -}}
{{- .Values.mlflow.externalUri -}}
{{- end -}}
{{- end -}}

{{/* The package index URL the pods and BuildKit use. */}}
{{- define "fleet-eval.indexUrl" -}}
{{- if .Values.packageIndex.enabled -}}
{{- printf "http://%s.%s.svc:%d/simple/" (include "fleet-eval.componentName" (dict "context" . "component" "package-index")) .Release.Namespace (int .Values.packageIndex.port) -}}
{{- else -}}
{{- .Values.packageIndex.externalUrl -}}
{{- end -}}
{{- end -}}

{{/* battery-lib's Git repository: sources.libraryGitUrl, or the demo Git server's copy. */}}
{{- define "fleet-eval.libraryGitUrl" -}}
{{- if .Values.sources.libraryGitUrl -}}
{{- .Values.sources.libraryGitUrl -}}
{{- else if and .Values.demo.enabled .Values.demo.gitServer.enabled -}}
{{- printf "http://%s.%s.svc/git/battery-lib.git" (include "fleet-eval.componentName" (dict "context" . "component" "git")) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Comma-separated shard URLs: the demo's shards (fleet-eval.shardCount of them), or sources.shardUrls. */}}
{{- define "fleet-eval.shardUrls" -}}
{{- if .Values.demo.enabled -}}
{{- $host := printf "%s.%s.svc" (include "fleet-eval.componentName" (dict "context" . "component" "demo-shards")) .Release.Namespace -}}
{{- $urls := list -}}
{{- range $i := until (int (include "fleet-eval.shardCount" .)) -}}
{{- $urls = append $urls (printf "http://%s:%d" $host (add $.Values.demo.portBase $i)) -}}
{{- end -}}
{{- join "," $urls -}}
{{- else -}}
{{- join "," .Values.sources.shardUrls -}}
{{- end -}}
{{- end -}}

{{/* Pod-level and container-level security contexts. */}}
{{- define "fleet-eval.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}
{{- define "fleet-eval.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext -}}
{{- end -}}

{{/* The Workflow name of a GitOps release: derived from library, version and the optional run label only, so it is stable. */}}
{{- define "fleet-eval.releaseWorkflowName" -}}
{{- $library := default "battery-lib" .library -}}
{{- $id := printf "%s@%s" $library (toString .version) -}}
{{- $raw := printf "release-%s-%s" $library (toString .version) -}}
{{- /* A run label makes the same version a new release; without one the name is what it always was. */ -}}
{{- with .run }}
{{- $id = printf "%s#%s" $id (toString .) -}}
{{- $raw = printf "%s-%s" $raw (toString .) -}}
{{- end }}
{{- $base := regexReplaceAll "[^a-z0-9-]+" (lower $raw) "-" | trunc 52 | trimSuffix "-" -}}
{{- /* The hash tells apart versions that sanitise alike (0.9.0+a vs 0.9.0-a). */ -}}
{{- printf "%s-%s" $base ($id | sha256sum | trunc 8) -}}
{{- end -}}
