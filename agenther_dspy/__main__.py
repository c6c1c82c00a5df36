from agenther_dspy.cli import main

main()
