{{/*
Fills every value the release lacks from files/defaults.yaml (values.yaml's defaults), in place;
each template includes it first, so the order templates render in does not matter. Needed for
`helm upgrade --reuse-values`, which renders with the previous chart's values: the values added
since would be nil (e.g. "nil pointer evaluating interface {}.serviceMonitor").
*/}}
{{- define "kaput-not.defaults" -}}
{{- include "kaput-not.fill" (list .Values (include "kaput-not.defaultValues" . | fromYaml)) }}
{{- end }}

{{/*
(list $values $defaults): adds to $values each key of $defaults it lacks (or holds as null),
recursing into maps. Unlike sprig's merge, a false, 0 or "" that was set stays as set.
*/}}
{{- define "kaput-not.fill" -}}
{{- $values := index . 0 }}
{{- range $key, $default := index . 1 }}
{{- $value := get $values $key }}
{{- if or (not (hasKey $values $key)) (kindIs "invalid" $value) }}
{{- $_ := set $values $key $default }}
{{- else if and (kindIs "map" $default) (kindIs "map" $value) }}
{{- include "kaput-not.fill" (list $value $default) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kaput-not.defaultValues" -}}
{{- .Files.Get "files/defaults.yaml" }}
{{- end }}

{{/* Chart name, nameOverride applied, cut to the 63 characters of a label value. */}}
{{- define "kaput-not.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Resource name: fullnameOverride, else "<release>-<chart>", or just the release name when it
already contains the chart name.
*/}}
{{- define "kaput-not.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kaput-not.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods of this release; never change them after the first install. */}}
{{- define "kaput-not.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kaput-not.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource: the selector labels, chart metadata and the `labels` value. */}}
{{- define "kaput-not.labels" -}}
helm.sh/chart: {{ include "kaput-not.chart" . }}
{{ include "kaput-not.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kaput-not.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kaput-not.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Role and RoleBinding for Events in `default`: one per release and release namespace. */}}
{{- define "kaput-not.eventsRoleName" -}}
{{- printf "%s-events-%s" (include "kaput-not.fullname" .) .Release.Namespace }}
{{- end }}

{{/* Name of the Lease: the Go chart's leaderElection.id wins when set. */}}
{{- define "kaput-not.leaseName" -}}
{{- default .Values.leaderElection.leaseName .Values.leaderElection.id }}
{{- end }}

{{/*
The chart's own Secret for the password. Not the Go chart's name (the full name): helm patches
a Secret of the same name, and would leave the Go chart's NETMAKER_PASSWORD and
NETMAKER_USERNAME keys in it (they were stringData); under another name the Go one is deleted.
*/}}
{{- define "kaput-not.ownSecret" -}}
{{- printf "%s-password" (include "kaput-not.fullname" .) }}
{{- end }}

{{/* Secret holding the Netmaker password: existingSecret, else the chart's own. */}}
{{- define "kaput-not.passwordSecret" -}}
{{- default (include "kaput-not.ownSecret" .) .Values.netmaker.existingSecret }}
{{- end }}

{{/*
A value as an environment string. Numbers from values files arrive as floats, and Go prints
1000000.0 as "1e+06"; whole numbers are printed as integers instead.
*/}}
{{- define "kaput-not.env" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . | toString }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* The Go implementation's image, which a values file from the Go chart names. */}}
{{- define "kaput-not.goImage" -}}ghcr.io/bsure-analytics/kaput-not{{- end }}

{{/* True (non-empty) when image.repository is the Go implementation's image. */}}
{{- define "kaput-not.isGoImage" -}}
{{- if eq (trimSuffix "/" (toString .Values.image.repository)) (include "kaput-not.goImage" .) }}true{{ end }}
{{- end }}

{{/*
The container image: repository@digest when image.digest is set, else repository:tag.
The Go chart's repository is replaced by this chart's: this chart cannot run the Go image (its
settings and its password file are not what the Go binary reads), and a values file carried over
from the Go chart names it only because the Go chart's values.yaml does. A tag or digest next to
it pins a version of the Go image, whose counterpart here nobody can guess: that fails.
*/}}
{{- define "kaput-not.image" -}}
{{- $image := .Values.image }}
{{- $repository := $image.repository }}
{{- if include "kaput-not.isGoImage" . }}
{{- $pinned := ternary "digest" "tag" (not (empty $image.digest)) }}
{{- if or $image.tag $image.digest }}
{{- fail (printf "image.repository %s is the Go implementation's image and image.%s pins one of its versions: remove both from your values (this chart runs %s)" $repository $pinned (include "kaput-not.defaultValues" . | fromYaml).image.repository) }}
{{- end }}
{{- $repository = (include "kaput-not.defaultValues" . | fromYaml).image.repository }}
{{- end }}
{{- if $image.digest }}
{{- printf "%s@%s" $repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (toString ($image.tag | default .Chart.AppVersion)) }}
{{- end }}
{{- end }}

{{/*
Whole seconds of a duration as kaput-not reads it (500ms, 30s, 10m, 1h30m or plain seconds),
rounded up; values.schema.json has already checked the grammar.
*/}}
{{- define "kaput-not.seconds" -}}
{{- $text := include "kaput-not.env" . | trim }}
{{- $total := 0.0 }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?$" $text }}
{{- $total = float64 $text }}
{{- else }}
{{- $scale := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" $text -1 }}
{{- $unit := regexFind "(ms|s|m|h)$" . }}
{{- $total = addf $total (mulf (float64 (trimSuffix $unit .)) (get $scale $unit)) }}
{{- end }}
{{- end }}
{{- ceil $total | int64 }}
{{- end }}

{{/* Labels of one alert: prometheusRule.alertLabels, and its severity, which wins. */}}
{{- define "kaput-not.alertLabels" -}}
{{- $severity := index . 0 }}
{{- $extra := index . 1 | default dict }}
{{- toYaml (merge (dict "severity" $severity) (deepCopy $extra)) }}
{{- end }}

{{/* Mount points of the password and CA Secrets. */}}
{{- define "kaput-not.passwordDir" -}}/var/run/secrets/kaput-not/netmaker{{- end }}
{{- define "kaput-not.caDir" -}}/var/run/secrets/kaput-not/netmaker-ca{{- end }}

{{/* NETMAKER_CA_FILE: in the mounted caSecret, or an absolute caFile as given; else empty. */}}
{{- define "kaput-not.caFile" -}}
{{- if .Values.netmaker.caSecret }}
{{- printf "%s/%s" (include "kaput-not.caDir" .) (required "netmaker.caFile: the key of the CA bundle in netmaker.caSecret must not be empty" .Values.netmaker.caFile) }}
{{- else if hasPrefix "/" (.Values.netmaker.caFile | default "") }}
{{- .Values.netmaker.caFile }}
{{- end }}
{{- end }}

{{/*
Checks that fail the install with one clear message instead of a pod that cannot start or,
worse, two replicas writing at once. Included by the Deployment and the Secret.
*/}}
{{- define "kaput-not.validate" -}}
{{- $nm := .Values.netmaker }}
{{- if eq (toString $nm.password) "REPLACE-WITH-ACTUAL-PASSWORD" }}
{{- fail "netmaker.password is the Go chart's placeholder REPLACE-WITH-ACTUAL-PASSWORD: set the real one (--set netmaker.password=...) or netmaker.existingSecret, and remove the placeholder from your values" }}
{{- end }}
{{- $_ := required "netmaker.apiUrl is required: the Netmaker API base URL, e.g. --set netmaker.apiUrl=https://api.netmaker.example.com" $nm.apiUrl }}
{{- $_ = required "netmaker.username is required: the Netmaker user kaput-not logs in as" $nm.username }}
{{- if $nm.existingSecret }}
{{- if $nm.password }}
{{- fail "netmaker.password and netmaker.existingSecret are both set: use one (existingSecret names a Secret that already holds the password)" }}
{{- end }}
{{- else }}
{{- $_ = required "netmaker.password is required: set it (--set netmaker.password=...) or set netmaker.existingSecret to a Secret that holds it (key: netmaker.existingSecretKey)" $nm.password }}
{{- end }}
{{- $_ = required "netmaker.existingSecretKey must not be empty: the key of the password in the Secret" $nm.existingSecretKey }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without it every replica writes to Netmaker" }}
{{- end }}
{{- if not (has .Values.podAntiAffinity (list "soft" "hard" "none")) }}
{{- fail "podAntiAffinity must be soft, hard or none" }}
{{- end }}
{{- end }}

{{/*
checksum/secret of the pod template: changes with the password or the Secret it comes from.
Pods are readable by more people than Secrets, so a plain hash of a weak password could be
reversed by guessing; the password goes through derivePassword (scrypt-based) first.
*/}}
{{- define "kaput-not.secretChecksum" -}}
{{- $nm := .Values.netmaker }}
{{- $derived := "" }}
{{- if $nm.password }}
{{- $derived = derivePassword 1 "maximum" $nm.password $nm.username (include "kaput-not.fullname" .) }}
{{- end }}
{{- printf "%s|%s|%s" $nm.existingSecret $nm.existingSecretKey $derived | sha256sum }}
{{- end }}
