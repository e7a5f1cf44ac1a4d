package webhook

// Parse extracts the ad clicks from a Meta webhook body (Messenger "page",
// "instagram" or WhatsApp Cloud API "whatsapp_business_account"). A body that
// is not a JSON object returns ErrNotJSON. Any other JSON, however odd, yields
// a Payload and a nil error: unknown objects have an empty Channel.
func Parse(body []byte) (Payload, error) {
	panic("TODO(webhook helper)")
}

// ParseOnPrem extracts the ad clicks from a WhatsApp On-Premises delivery
// (top-level "contacts" and "messages"). Such deliveries carry no WABA id, so
// wabaID (configured by the operator) becomes every Touch's BusinessID.
func ParseOnPrem(body []byte, wabaID string) (Payload, error) {
	panic("TODO(webhook helper)")
}
