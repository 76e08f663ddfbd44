package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kinds maps "apiVersion Kind" to a constructor of the type a document of that
// kind is decoded into. Anything else in the stream is an error: a chart that
// starts rendering a new kind must be taught to the checker first.
var kinds = map[string]func() metav1.Object{
	"apps/v1 Deployment":                      func() metav1.Object { return &appsv1.Deployment{} },
	"apps/v1 StatefulSet":                     func() metav1.Object { return &appsv1.StatefulSet{} },
	"v1 Service":                              func() metav1.Object { return &corev1.Service{} },
	"v1 ConfigMap":                            func() metav1.Object { return &corev1.ConfigMap{} },
	"v1 Secret":                               func() metav1.Object { return &corev1.Secret{} },
	"v1 ServiceAccount":                       func() metav1.Object { return &corev1.ServiceAccount{} },
	"networking.k8s.io/v1 Ingress":            func() metav1.Object { return &networkingv1.Ingress{} },
	"networking.k8s.io/v1 NetworkPolicy":      func() metav1.Object { return &networkingv1.NetworkPolicy{} },
	"autoscaling/v2 HorizontalPodAutoscaler":  func() metav1.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1 PodDisruptionBudget":           func() metav1.Object { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1 ServiceMonitor": func() metav1.Object { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1 PrometheusRule": func() metav1.Object { return &monitoringv1.PrometheusRule{} },
}

// doc is one decoded document of the stream.
type doc struct {
	source string // Helm's "# Source:" comment, or "document N"
	kind   string
	obj    metav1.Object
}

func (d doc) String() string {
	return fmt.Sprintf("%s %s (%s)", d.kind, d.obj.GetName(), d.source)
}

// decodeStream splits a multi-document YAML stream and strictly decodes every
// non-empty document. It returns the documents it could decode and one error per
// document it could not.
func decodeStream(r io.Reader) ([]doc, []error) {
	var (
		docs []doc
		errs []error
	)
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for n := 1; ; n++ {
		raw, err := yr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: read: %w", n, err))
			break
		}
		source := sourceOf(raw, n)
		d, err := decodeDoc(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source, err))
			continue
		}
		if d.obj == nil {
			continue // empty document: only comments or whitespace
		}
		d.source = source
		docs = append(docs, d)
	}
	return docs, errs
}

// decodeDoc converts one YAML document to JSON (rejecting duplicate keys) and
// decodes it into the type registered for its apiVersion and kind, rejecting
// unknown fields and mistyped values. An empty document yields a zero doc.
func decodeDoc(raw []byte) (doc, error) {
	j, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return doc{}, fmt.Errorf("yaml: %w", err)
	}
	if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
		return doc{}, nil
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return doc{}, fmt.Errorf("not an object: %w", err)
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return doc{}, errors.New("apiVersion and kind are required")
	}
	key := tm.APIVersion + " " + tm.Kind
	newObj, ok := kinds[key]
	if !ok {
		return doc{}, fmt.Errorf("unknown kind %q", key)
	}
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return doc{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if obj.GetName() == "" {
		return doc{}, fmt.Errorf("%s: metadata.name is empty", tm.Kind)
	}
	return doc{kind: tm.Kind, obj: obj}, nil
}

// sourceOf returns the template path Helm writes before each document.
func sourceOf(raw []byte, n int) string {
	for _, line := range strings.Split(string(raw), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
			return s
		}
	}
	return fmt.Sprintf("document %d", n)
}
