from splitlab_analyzer.consumer.main import main

main()
