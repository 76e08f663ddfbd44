{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "realtime.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release-chart, or the release name when it already contains the chart
name. Truncated so that suffixes (-admin, -redis-headless) still fit 63.
*/}}
{{- define "realtime.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 47 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "realtime.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "realtime.labels" -}}
helm.sh/chart: {{ include "realtime.chart" . }}
{{ include "realtime.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: realtime
{{- end }}

{{- define "realtime.selectorLabels" -}}
app.kubernetes.io/name: {{ include "realtime.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector of the realtime nodes' pods; the component keeps the bundled Redis pods
out of the nodes' Services, PDB and NetworkPolicy.
*/}}
{{- define "realtime.serverSelectorLabels" -}}
{{ include "realtime.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "realtime.redisSelectorLabels" -}}
{{ include "realtime.selectorLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "realtime.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "realtime.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "realtime.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "realtime.redisFullname" -}}
{{- printf "%s-redis" (include "realtime.fullname" .) }}
{{- end }}

{{/*
The Secret holding the keys of .Values.secretKeys: the user's, or the chart's.
*/}}
{{- define "realtime.secretName" -}}
{{- default (include "realtime.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "realtime.jwtUsesPublicKey" -}}
{{- if has .Values.auth.jwt.alg (list "RS256" "ES256") }}true{{ end }}
{{- end }}

{{/*
Which engine the nodes use: bundled, sentinel or url (from the chart's Secret or
existingSecret), or embedded when no Redis is configured (one node, in-memory
engines). The schema already refuses two at once; the fails here give the same
answer to a chart used without its schema.
*/}}
{{- define "realtime.redisMode" -}}
{{- $r := .Values.redis }}
{{- $sentinel := or $r.external.sentinel.master $r.external.sentinel.addrs }}
{{- $cluster := $r.external.cluster.addrs }}
{{- if $r.bundled.enabled }}
{{- if or $r.external.url $sentinel $cluster }}
{{- fail "redis: set either redis.bundled.enabled or redis.external, not both" }}
{{- end }}
{{- print "bundled" }}
{{- else if $cluster }}
{{- if or $r.external.url $sentinel }}
{{- fail "redis: set only one of redis.external.url, redis.external.sentinel and redis.external.cluster" }}
{{- end }}
{{- print "cluster" }}
{{- else if $sentinel }}
{{- if $r.external.url }}
{{- fail "redis: set either redis.external.url or redis.external.sentinel, not both" }}
{{- end }}
{{- if not (and $r.external.sentinel.master $r.external.sentinel.addrs) }}
{{- fail "redis: redis.external.sentinel needs both master and addrs" }}
{{- end }}
{{- print "sentinel" }}
{{- else if or $r.external.url .Values.existingSecret }}
{{- print "url" }}
{{- else }}
{{- print "embedded" }}
{{- end }}
{{- end }}

{{/*
Nodes when not autoscaling: replicaCount, or by default 1 on the embedded
engine and 2 with a Redis.
*/}}
{{- define "realtime.replicas" -}}
{{- if kindIs "invalid" .Values.replicaCount }}
{{- if eq (include "realtime.redisMode" .) "embedded" }}1{{ else }}2{{ end }}
{{- else }}
{{- .Values.replicaCount | int }}
{{- end }}
{{- end }}

{{/*
GOMEMLIMIT: goMemLimitPercent of resources.limits.memory (a Kubernetes
quantity: 1Gi, 512Mi, 1G, 1073741824), in MiB; empty when either is unset.
*/}}
{{- define "realtime.goMemLimit" -}}
{{- $raw := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- $limit := $raw | toString }}
{{- if or (kindIs "float64" $raw) (kindIs "int" $raw) (kindIs "int64" $raw) }}
{{- $limit = $raw | int64 | toString }}{{/* a plain byte count: YAML reads it as a number */}}
{{- end }}
{{- $pct := .Values.goMemLimitPercent | int }}
{{- if and $limit (gt $pct 0) }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $limit }}
{{- $suffix := trimPrefix $num $limit }}
{{- $units := dict "" 1.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 }}
{{- if or (not $num) (not (hasKey $units $suffix)) }}
{{- fail (printf "resources.limits.memory %q: want a number with an optional Ki, Mi, Gi, Ti, k, M, G or T suffix" $limit) }}
{{- end }}
{{- $bytes := mulf (float64 $num) (get $units $suffix) }}
{{- printf "%dMiB" (int64 (floor (divf (mulf $bytes $pct) 104857600.0))) }}
{{- end }}
{{- end }}

{{/*
Checks across values that the schema cannot express; included by the Deployment.
helm lint reports a fail() here only as [INFO]; install and template stop.
*/}}
{{- define "realtime.validate" -}}
{{- $p := .Values.ports }}
{{- if or (eq (int $p.http) (int $p.admin)) (and $p.api (or (eq (int $p.api) (int $p.http)) (eq (int $p.api) (int $p.admin)))) }}
{{- fail (printf "ports.http (%v), ports.admin (%v) and ports.api (%v) must differ: each is a listener of its own" $p.http $p.admin $p.api) }}
{{- end }}
{{- if eq (include "realtime.redisMode" .) "embedded" }}
{{- if .Values.autoscaling.enabled }}
{{- fail "autoscaling needs a Redis: on the embedded engine (no redis.* set) the release is one node" }}
{{- end }}
{{- if gt (include "realtime.replicas" . | int) 1 }}
{{- fail "replicaCount above 1 needs a Redis: nodes on the embedded engine share nothing (set redis.external.url, redis.external.sentinel or redis.bundled.enabled)" }}
{{- end }}
{{- end }}
{{- $drain := .Values.config.drainPeriod }}
{{- $drainSeconds := -1 }}
{{- if regexMatch "^[0-9]+s$" $drain }}
{{- $drainSeconds = trimSuffix "s" $drain | int }}
{{- else if regexMatch "^[0-9]+m$" $drain }}
{{- $drainSeconds = mul (trimSuffix "m" $drain | int) 60 }}
{{- end }}
{{- if and (ge $drainSeconds 0) (le (int .Values.terminationGracePeriodSeconds) $drainSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed config.drainPeriod (%s)" (int .Values.terminationGracePeriodSeconds) $drain) }}
{{- end }}
{{- end }}

{{/*
A value for the chart's Secret, base64-encoded: the configured one, else the one
already stored in the release's Secret (so a generated value survives upgrades),
else a new random one. Usage: include "realtime.secretValue" (list $ "api-key" .Values.auth.apiKey)
*/}}
{{- define "realtime.secretValue" -}}
{{- $ctx := index . 0 }}
{{- $key := index . 1 }}
{{- $value := index . 2 }}
{{- if $value }}
{{- $value | b64enc }}
{{- else }}
{{- $existing := lookup "v1" "Secret" $ctx.Release.Namespace (include "realtime.fullname" $ctx) | default dict }}
{{- $stored := get (get $existing "data" | default dict) $key }}
{{- if $stored }}
{{- $stored }}
{{- else }}
{{- randAlphaNum 40 | b64enc }}
{{- end }}
{{- end }}
{{- end }}
