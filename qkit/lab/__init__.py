"""What a student touches: widget explorers (`widgets`), the figures they draw (`plots`), and
the exercise checkers (`exercises`). Widgets wire controls to pure functions of
`qkit.topics` and draw through `plots`.
"""
