{{/* Names and labels shared by every template. */}}
{{- define "nodemesh.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "nodemesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nodemesh
{{- end -}}

{{/* Selector labels of one component: "controller" or "agent". */}}
{{- define "nodemesh.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "nodemesh.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "nodemesh.controller" -}}{{ include "nodemesh.fullname" . }}-controller{{- end -}}
{{- define "nodemesh.agent" -}}{{ include "nodemesh.fullname" . }}-agent{{- end -}}

{{- define "nodemesh.rootNamespace" -}}{{ .Values.rootNamespace | default .Release.Namespace }}{{- end -}}

{{/* The Secret with the CA key (controller only) and the ConfigMap with the root (agents). */}}
{{- define "nodemesh.caSecret" -}}{{ .Values.ca.existingSecret | default (printf "%s-ca" (include "nodemesh.fullname" .)) }}{{- end -}}
{{- define "nodemesh.caRoot" -}}{{ .Values.ca.existingRootConfigMap | default (printf "%s-ca-root" (include "nodemesh.fullname" .)) }}{{- end -}}

{{/* host:port agents dial; the controller's serving certificate names the same host. */}}
{{- define "nodemesh.controllerHost" -}}{{ include "nodemesh.controller" . }}.{{ .Release.Namespace }}.svc{{- end -}}

{{/* cni-install flags. The release namespace is always passed through: the controller runs there,
and holding its pods until a controller enrolls them would never end. */}}
{{- define "nodemesh.cniArgs" -}}
{{- $ns := uniq (append .Values.cni.excludeNamespaces .Release.Namespace) -}}
--enroll-timeout-ms={{ .Values.cni.enrollTimeoutMs }}, {{ printf "--exclude-namespaces=%s" (join "," $ns) | quote }}
{{- end -}}

{{- define "nodemesh.cniSecurityContext" -}}
{privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsUser: 0, runAsNonRoot: false, capabilities: {drop: [ALL]}}
{{- end -}}
