package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	eventsourcecommon "github.com/argoproj/argo-events/pkg/eventsources/common"
	"github.com/argoproj/argo-events/pkg/eventsources/sources/github"
	"github.com/argoproj/argo-events/pkg/metrics"
	sharedexpr "github.com/argoproj/argo-events/pkg/shared/expr"
	"github.com/argoproj/argo-events/pkg/shared/logging"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
	"go.uber.org/zap"
)

// Delivery is one webhook delivery as GitHub sends it.
type Delivery struct {
	Event        string   // X-GitHub-Event
	ID           string   // X-GitHub-Delivery
	Body         []byte   // the JSON payload
	ExtraHeaders []string // "Name: value", added or replacing
	Secret       string   // signs X-Hub-Signature-256 when the EventSource has a webhookSecret
	EventID      string   // CloudEvent id; empty: a random UUID
	EventTime    time.Time
	Verbose      bool
}

// DeliveryReport says what the EventSource made of the request.
type DeliveryReport struct {
	EventSource string `json:"eventSource"`
	EventName   string `json:"eventName"`
	GithubEvent string `json:"githubEvent"`
	// Subscribed: the EventSource's `events` list (what the webhook it registers asks GitHub for)
	// holds this event. GitHub sends nothing else to a webhook Argo registered.
	Subscribed bool `json:"subscribed"`
	// Status and Response are the listener's HTTP answer to GitHub.
	Status   int    `json:"status"`
	Response string `json:"response"`
	// Published: the EventSource put an event on the EventBus. False when the listener rejected
	// the request or the EventSource's own filter dropped it (FilteredBy says which).
	Published  bool   `json:"published"`
	FilteredBy string `json:"filteredBy,omitempty"`
	// Unevaluated lists parts of the EventSource this run could not exercise (secrets are files
	// mounted into Argo's pod).
	Unevaluated []string `json:"unevaluated,omitempty"`
}

// deliver starts the GitHub EventSource listener for es/eventName on a loopback port, sends it the
// delivery and returns the CloudEvent the EventSource adaptor would publish (nil if none).
func deliver(es *v1alpha1.EventSource, eventName string, d Delivery) (*DeliveryReport, *cloudevents.Event, error) {
	orig := es.Spec.Github[eventName]
	g := *orig.DeepCopy()
	report := &DeliveryReport{
		EventSource: es.Name, EventName: eventName, GithubEvent: d.Event,
		Subscribed: slices.Contains(g.Events, d.Event) || slices.Contains(g.Events, "*"),
	}
	signed := g.WebhookSecret != nil
	// Registering the webhook needs GitHub; the secrets are files in Argo's pod. Drop both.
	if g.APIToken != nil || g.GithubApp != nil {
		report.Unevaluated = append(report.Unevaluated, "webhook registration (apiToken/githubApp): needs GitHub")
	}
	if g.WebhookSecret != nil {
		report.Unevaluated = append(report.Unevaluated, "X-Hub-Signature-256 verification: webhookSecret is a file mounted into Argo's pod")
	}
	g.APIToken, g.GithubApp, g.WebhookSecret = nil, nil, nil
	if g.Webhook == nil {
		return nil, nil, fmt.Errorf("EventSource %s/%s has no webhook", es.Name, eventName)
	}
	hook := *g.Webhook
	if hook.ServerCertSecret != nil || hook.AuthSecret != nil {
		report.Unevaluated = append(report.Unevaluated, "webhook TLS and auth secrets: files mounted into Argo's pod")
	}
	hook.ServerCertSecret, hook.ServerKeySecret, hook.AuthSecret = nil, nil, nil
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	hook.Port = strconv.Itoa(port)
	g.Webhook = &hook

	logger := zap.NewNop().Sugar()
	if d.Verbose {
		l, _ := zap.NewDevelopment()
		logger = l.Sugar()
	}
	ctx, cancel := context.WithCancel(logging.WithLogger(context.Background(), logger))
	defer cancel()

	var mu sync.Mutex
	var published *cloudevents.Event
	listener := &github.EventListener{
		EventSourceName: es.Name, EventName: eventName, GithubEventSource: g,
		Metrics: metrics.NewMetrics(es.Namespace),
	}
	// The dispatch function below is the EventSource adaptor's (eventsources/eventing.go, run):
	// the EventSource-level filter, then the CloudEvent it publishes on the EventBus.
	dispatch := func(data []byte, opts ...eventsourcecommon.Option) error {
		if g.Filter != nil {
			ok, err := eventSourceFilter(data, g.Filter)
			if err != nil || !ok {
				mu.Lock()
				report.FilteredBy = fmt.Sprintf("EventSource filter %q (result %v, error %v)", g.Filter.Expression, ok, err)
				mu.Unlock()
				return nil
			}
		}
		event := cloudevents.NewEvent()
		id := d.EventID
		if id == "" {
			u := uuid.New()
			id = fmt.Sprintf("%x", u[:])
		}
		event.SetID(id)
		event.SetType(string(listener.GetEventSourceType()))
		event.SetSource(listener.GetEventSourceName())
		event.SetSubject(listener.GetEventName())
		event.SetTime(d.EventTime)
		for _, opt := range opts {
			if err := opt(&event); err != nil {
				return err
			}
		}
		if err := event.SetData(cloudevents.ApplicationJSON, data); err != nil {
			return err
		}
		mu.Lock()
		published = &event
		mu.Unlock()
		return nil
	}
	errc := make(chan error, 1)
	go func() { errc <- listener.StartListening(ctx, dispatch) }()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	if err := waitHealthy(client, base+"/health", errc); err != nil {
		return nil, nil, err
	}
	body, contentType := d.Body, "application/json"
	if g.ContentType == "form" {
		body, contentType = []byte("payload="+url.QueryEscape(string(d.Body))), "application/x-www-form-urlencoded"
	}
	headers := http.Header{}
	// The headers GitHub documents for a delivery ("Webhook events and payloads: delivery headers").
	headers.Set("Accept", "*/*")
	headers.Set("Content-Type", contentType)
	headers.Set("User-Agent", "GitHub-Hookshot/argo-eval")
	headers.Set("X-GitHub-Event", d.Event)
	headers.Set("X-GitHub-Delivery", d.ID)
	if signed {
		mac := hmac.New(sha256.New, []byte(d.Secret))
		mac.Write(body)
		headers.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	for _, h := range d.ExtraHeaders {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, nil, fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		headers.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	method := hook.Method
	if method == "" {
		method = http.MethodPost
	}
	// The route turns active just after its handler is registered: retry while it says inactive.
	for try := 0; ; try++ {
		req, err := http.NewRequest(method, base+hook.Endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		req.Header = headers.Clone()
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("POST to the GitHub EventSource listener: %w", err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(text), "endpoint is inactive") && try < 100 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		report.Status, report.Response = resp.StatusCode, strings.TrimSpace(string(text))
		break
	}
	mu.Lock()
	defer mu.Unlock()
	report.Published = published != nil
	return report, published, nil
}

// eventSourceFilter is the adaptor's filterEvent (eventsources/eventing.go): Argo's expr
// evaluation over the event data's top-level keys, '-' in keys read as '_'.
func eventSourceFilter(data []byte, filter *v1alpha1.EventSourceFilter) (bool, error) {
	dataMap := map[string]interface{}{}
	if err := json.Unmarshal(data, &dataMap); err != nil {
		return false, fmt.Errorf("failed to unmarshal data, %w", err)
	}
	params := map[string]interface{}{}
	for k, v := range dataMap {
		params[strings.ReplaceAll(k, "-", "_")] = v
	}
	return sharedexpr.EvalBool(filter.Expression, sharedexpr.GetFuncMap(params))
}

// freePort asks the kernel for a free loopback port. Argo's webhook server takes a port number
// (it listens on ":PORT"), so the port is released and handed over.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitHealthy(client *http.Client, url string, errc <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			return fmt.Errorf("the GitHub EventSource listener stopped: %v", err)
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the GitHub EventSource listener did not answer on %s", url)
}
