package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/eventsources/sources/github"
	sensorreconciler "github.com/argoproj/argo-events/pkg/reconciler/sensor"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Manifests are the EventSources and Sensors read from the -f paths, in the order found.
type Manifests struct {
	EventSources []v1alpha1.EventSource `json:"eventSources"`
	Sensors      []v1alpha1.Sensor      `json:"sensors"`
}

// loadManifests reads every YAML document under paths (files, or directories: their *.yaml and
// *.yml files, sorted), decodes the EventSources and Sensors strictly into Argo's types and
// validates them. Errors name the file and the object.
func loadManifests(paths []string) (*Manifests, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
				names = append(names, filepath.Join(p, e.Name()))
			}
		}
		sort.Strings(names)
		files = append(files, names...)
	}
	m := &Manifests{EventSources: []v1alpha1.EventSource{}, Sensors: []v1alpha1.Sensor{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for n := 1; ; n++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", f, n, err)
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", f, n, err)
			}
			if tm.APIVersion != v1alpha1.SchemeGroupVersion.String() {
				continue
			}
			switch tm.Kind {
			case "EventSource":
				var es v1alpha1.EventSource
				if err := yaml.UnmarshalStrict(doc, &es); err != nil {
					return nil, fmt.Errorf("%s: EventSource (document %d) does not decode into Argo's type: %w", f, n, err)
				}
				if err := validateEventSource(&es); err != nil {
					return nil, fmt.Errorf("%s: EventSource %s is invalid: %w", f, es.Name, err)
				}
				m.EventSources = append(m.EventSources, es)
			case "Sensor":
				var s v1alpha1.Sensor
				if err := yaml.UnmarshalStrict(doc, &s); err != nil {
					return nil, fmt.Errorf("%s: Sensor (document %d) does not decode into Argo's type: %w", f, n, err)
				}
				// The Sensor controller validates against the Sensor's EventBus; JetStream is the default.
				bus := &v1alpha1.EventBus{Spec: v1alpha1.EventBusSpec{JetStream: &v1alpha1.JetStreamBus{}}}
				if err := sensorreconciler.ValidateSensor(s.DeepCopy(), bus); err != nil {
					return nil, fmt.Errorf("%s: Sensor %s is invalid (Argo's ValidateSensor): %w", f, s.Name, err)
				}
				m.Sensors = append(m.Sensors, s)
			}
		}
	}
	// A dependency on an event no EventSource here publishes never fires: say so.
	for _, s := range m.Sensors {
		for _, d := range s.Spec.Dependencies {
			if !m.publishes(d.EventSourceName, d.EventName) {
				return nil, fmt.Errorf("Sensor %s: dependency %s waits for %s/%s, which no EventSource in the manifests publishes",
					s.Name, d.Name, d.EventSourceName, d.EventName)
			}
		}
	}
	return m, nil
}

// validateEventSource runs the GitHub EventSource's own validation on each GitHub entry. Other
// source types are refused: this evaluator cannot deliver to them.
func validateEventSource(es *v1alpha1.EventSource) error {
	if len(es.Spec.Github) == 0 {
		return fmt.Errorf("no github entries (only GitHub EventSources are evaluated)")
	}
	names := map[string]bool{}
	for name, g := range es.Spec.Github {
		names[name] = true
		l := &github.EventListener{EventSourceName: es.Name, EventName: name, GithubEventSource: g}
		if err := l.ValidateEventSource(context.Background()); err != nil {
			return fmt.Errorf("github %s: %w", name, err)
		}
	}
	spec := es.Spec.DeepCopy()
	spec.Github = nil
	spec.Service = nil
	spec.Template = nil
	spec.EventBusName = ""
	spec.Replicas = nil
	if rest, _ := yaml.Marshal(spec); strings.TrimSpace(string(rest)) != "{}" {
		return fmt.Errorf("has sources other than github, which this evaluator does not run: %s", strings.TrimSpace(string(rest)))
	}
	return nil
}

func (m *Manifests) publishes(source, event string) bool {
	for _, es := range m.EventSources {
		if _, ok := es.Spec.Github[event]; ok && es.Name == source {
			return true
		}
	}
	return false
}

// receiver picks the EventSource entry that receives the delivery: "SOURCE/EVENT", or the only one.
func (m *Manifests) receiver(sel string) (*v1alpha1.EventSource, string, error) {
	type entry struct {
		es   *v1alpha1.EventSource
		name string
	}
	var all []entry
	for i := range m.EventSources {
		for name := range m.EventSources[i].Spec.Github {
			all = append(all, entry{&m.EventSources[i], name})
		}
	}
	for _, e := range all {
		if sel == "" && len(all) == 1 || sel == e.es.Name+"/"+e.name {
			return e.es, e.name, nil
		}
	}
	if sel == "" {
		return nil, "", fmt.Errorf("%d GitHub EventSource entries: pick one with --source EVENTSOURCE/EVENTNAME", len(all))
	}
	return nil, "", fmt.Errorf("--source %s: no such GitHub EventSource entry", sel)
}
