{{- define "ci-healer.name" -}}ci-healer{{- end -}}
{{- define "ci-healer.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}
{{- define "ci-healer.serviceAccountName" -}}{{ .Values.serviceAccount.name | default "ci-healer" }}{{- end -}}
{{- define "ci-healer.labels" -}}
app.kubernetes.io/name: ci-healer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "ci-healer.selectorLabels" -}}
app.kubernetes.io/name: ci-healer
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
