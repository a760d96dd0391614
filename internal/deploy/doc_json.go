package deploy

// Lossless JSON for every document type: see Doc.

func (c ContentItem) MarshalJSON() ([]byte, error) {
	type plain ContentItem
	p := plain(c)
	return marshalDoc(&p, &c.Doc)
}

func (c *ContentItem) UnmarshalJSON(b []byte) error {
	type plain ContentItem
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*c = ContentItem(p)
	return nil
}

func (v ContentVersion) MarshalJSON() ([]byte, error) {
	type plain ContentVersion
	p := plain(v)
	return marshalDoc(&p, &v.Doc)
}

func (v *ContentVersion) UnmarshalJSON(b []byte) error {
	type plain ContentVersion
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*v = ContentVersion(p)
	return nil
}

func (d StepDefinition) MarshalJSON() ([]byte, error) {
	type plain StepDefinition
	p := plain(d)
	return marshalDoc(&p, &d.Doc)
}

func (d *StepDefinition) UnmarshalJSON(b []byte) error {
	type plain StepDefinition
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*d = StepDefinition(p)
	return nil
}

func (v StepDefVersion) MarshalJSON() ([]byte, error) {
	type plain StepDefVersion
	p := plain(v)
	return marshalDoc(&p, &v.Doc)
}

func (v *StepDefVersion) UnmarshalJSON(b []byte) error {
	type plain StepDefVersion
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*v = StepDefVersion(p)
	return nil
}

func (o Option) MarshalJSON() ([]byte, error) {
	type plain Option
	p := plain(o)
	return marshalDoc(&p, &o.Doc)
}

func (o *Option) UnmarshalJSON(b []byte) error {
	type plain Option
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*o = Option(p)
	return nil
}

func (v Validation) MarshalJSON() ([]byte, error) {
	type plain Validation
	p := plain(v)
	return marshalDoc(&p, &v.Doc)
}

func (v *Validation) UnmarshalJSON(b []byte) error {
	type plain Validation
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*v = Validation(p)
	return nil
}

func (o DropdownOption) MarshalJSON() ([]byte, error) {
	type plain DropdownOption
	p := plain(o)
	return marshalDoc(&p, &o.Doc)
}

func (o *DropdownOption) UnmarshalJSON(b []byte) error {
	type plain DropdownOption
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*o = DropdownOption(p)
	return nil
}

func (t TaskSequence) MarshalJSON() ([]byte, error) {
	type plain TaskSequence
	p := plain(t)
	return marshalDoc(&p, &t.Doc)
}

func (t *TaskSequence) UnmarshalJSON(b []byte) error {
	type plain TaskSequence
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*t = TaskSequence(p)
	return nil
}

func (v TSVersion) MarshalJSON() ([]byte, error) {
	type plain TSVersion
	p := plain(v)
	return marshalDoc(&p, &v.Doc)
}

func (v *TSVersion) UnmarshalJSON(b []byte) error {
	type plain TSVersion
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*v = TSVersion(p)
	return nil
}

func (s Step) MarshalJSON() ([]byte, error) {
	type plain Step
	p := plain(s)
	return marshalDoc(&p, &s.Doc)
}

func (s *Step) UnmarshalJSON(b []byte) error {
	type plain Step
	var p plain
	if err := unmarshalDoc(b, &p, &p.Doc); err != nil {
		return err
	}
	*s = Step(p)
	return nil
}
